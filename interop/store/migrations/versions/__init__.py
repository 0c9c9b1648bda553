"""Revision scripts, oldest first (``0001_initial`` creates the tables of ``interop/store/schema.py``)."""
