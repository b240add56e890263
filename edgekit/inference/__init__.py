"""Running an exported artifact on image files, as an app would: ``edgekit predict``."""
