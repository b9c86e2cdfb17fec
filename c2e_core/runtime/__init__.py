"""The ONNX runtime: exported networks run by onnxruntime, without torch."""
