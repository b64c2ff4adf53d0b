"""Team PKs: teams compete on a metric in a window; live scoreboard; settlement."""
