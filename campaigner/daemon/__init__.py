"""`campaigner run`: timers that wake the planner and the dispatcher; the database is the state."""
