"""The terminal: everything the CLI prints or asks goes through this package (rich);
nothing else in the engine prints or prompts. `terminal` holds check and show, `run` the
operator's side of a run, `log` past runs; each is imported only by the commands using it."""
