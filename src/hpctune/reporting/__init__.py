"""The report of a finished run: where each cell is drawn (layout), the figures, and the page
that shows them (``templates/report.html.j2``)."""
