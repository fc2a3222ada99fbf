"""Analysis: tables in, tables and dataclasses out; never trains, never draws."""

from traindyn.analysis.summary import RunSummary, SuiteSummary, summarize_run, summarize_suite

__all__ = ["RunSummary", "SuiteSummary", "summarize_run", "summarize_suite"]
