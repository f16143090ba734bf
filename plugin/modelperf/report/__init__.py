"""Rendering results: terminal and markdown summaries, the HTML report, the trade-off table and plot."""
