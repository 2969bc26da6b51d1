"""The experiment grid: the grid file, the driver that runs one training notebook per entry (locally or on
Dask), and its progress display."""
