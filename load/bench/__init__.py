"""The performance targets benchmark (`python -m load.bench`, see __main__) and the feature
benchmarks outside the table (`python -m load.bench badges|pk|leaderboard|events`).

Outside the `service` package on purpose: nothing in `service/` imports it (`engage bench`
runs it as a subprocess from a checkout, like `engage capacity`)."""
