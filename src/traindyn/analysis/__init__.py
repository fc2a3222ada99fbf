"""Analysis: tables in, tables and dataclasses out; never trains, never draws."""

from traindyn.analysis.summary import RunSummary, summarize_run

__all__ = ["RunSummary", "summarize_run"]
