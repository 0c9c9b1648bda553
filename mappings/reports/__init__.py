"""Data tables of interop.reports: PQA PDC class membership by RxNorm ingredient and product-to-ingredient codes."""
