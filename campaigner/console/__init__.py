"""The marketer's web console: the same rule files, database and checks as the CLI, behind
a sign-in. Served under /console by the daemon, or alone by `campaigner console`."""
