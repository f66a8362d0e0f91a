"""The fashion classifier in production: ONNX export and INT8 quantisation, image decoding,
micro-batching, and the FastAPI service with Prometheus metrics."""
