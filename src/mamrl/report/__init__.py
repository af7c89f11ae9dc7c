"""The top of the library: `mamrl reproduce`'s driver (`reproduce`), which runs the experiments'
stages and then writes the report, and the report itself (`markdown`: REPORT.md with its
figures and tables, drawn by `mamrl.plotting`)."""
