"""Reproducible comparisons of training modes and techniques (``deltaprop compare``)."""

from .registry import PROBLEMS, TECHNIQUES, Problem, Technique, get_problem, get_technique
from .report import markdown_table, text_table, write_report
from .runner import RunResult, applicable, parse_success, result_dicts, run_grid, run_one, summarise

__all__ = ["PROBLEMS", "TECHNIQUES", "Problem", "Technique", "RunResult", "applicable", "get_problem",
           "get_technique", "markdown_table", "parse_success", "result_dicts", "run_grid", "run_one",
           "summarise", "text_table", "write_report"]
