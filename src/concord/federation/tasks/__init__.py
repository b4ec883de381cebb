"""Tasks: Python installed at the node (entry points `concord.tasks`), never sent by the hub."""
