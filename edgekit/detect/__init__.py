"""Object detection: generated scenes, YOLO/COCO data, the TinyDetector family, detection distillation."""
