"""Layer 5, reporting: the pipeline's tables (:mod:`~rdusim.report.tables`,
:mod:`~rdusim.report.coe_tables`, :mod:`~rdusim.report.serve_tables`), the article's claims and their
check (:mod:`~rdusim.report.validation`), figures (:mod:`~rdusim.report.plots`), golden tables
(:mod:`~rdusim.report.goldens`), pipeline config checking and script helpers.

May import every layer below; only the CLI and ``workflow/`` scripts import it.
"""
