"""The open commons: models and datasets anyone can download, mirror or carry offline."""
