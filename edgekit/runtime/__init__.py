"""Running a model file the way an app does: onnxruntime sessions, LiteRT interpreters, host facts."""
