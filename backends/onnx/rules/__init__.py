"""The ONNX lowering rules, one module per op family (as `backends/numpy/kernels/`);
`backends/onnx/lowering.py` gathers them into the one table `LOWER`."""
