"""The staff web page (``/app``): the day's work and the program's results for pharmacy staff, server-rendered."""
