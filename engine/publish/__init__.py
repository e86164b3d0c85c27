"""publish: the mkdocs plugin that turns runbooks into readable procedures and adds the
history of their runs from the journal."""
