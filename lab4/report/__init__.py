"""The report: reads finished run folders (never trains) and writes the numbers, statistical tests, figures
and HTML exports; sections.py lists its sections."""
