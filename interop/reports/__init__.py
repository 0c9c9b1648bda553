"""Reports over the stored resources, as pure functions: PQA Proportion of Days Covered per patient, Star
class and ingredient, and its MeasureReports and CSV export."""

from interop.reports.classes import MEASURES, ClassTable, load_class_table
from interop.reports.history import Extraction, PatientHistory, extract_histories
from interop.reports.measure_report import individual_reports, measure_url, results_csv, summary_reports
from interop.reports.pdc import Coverage, PdcResult, Status, patient_pdc, population_pdc

__all__ = [
    "MEASURES",
    "ClassTable",
    "Coverage",
    "Extraction",
    "PatientHistory",
    "PdcResult",
    "Status",
    "extract_histories",
    "individual_reports",
    "load_class_table",
    "measure_url",
    "patient_pdc",
    "population_pdc",
    "results_csv",
    "summary_reports",
]
