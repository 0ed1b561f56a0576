"""``ruvector export CHECKPOINT OUT``: a checkpoint's module as an ONNX model (opset 18,
run by onnxruntime in Python, onnxruntime-node or onnxruntime-web) or as JSON weights."""


def _export(args):
    from ..export import export_checkpoint
    fmt = args.format or ("json" if args.out.endswith(".json") else "onnx")
    path = export_checkpoint(args.checkpoint, args.out, fmt, verify=not args.no_verify)
    detail = "ONNX opset 18" + ("" if args.no_verify else ", checked in onnxruntime") \
        if fmt == "onnx" else "JSON weights + " + path[:-5] + ".bin"
    print(f"wrote {path} ({detail})")


def register(sub):
    p = sub.add_parser("export", help="export a checkpoint's module as ONNX or JSON weights")
    p.add_argument("checkpoint", help="checkpoint directory (ruvector.training.save_checkpoint)")
    p.add_argument("out", help="output file: OUT.onnx, or OUT.json (+ OUT.bin) with "
                              "--format json")
    p.add_argument("--format", choices=("onnx", "json"),
                   help="onnx or json (default: json for a .json OUT, else onnx)")
    p.add_argument("--no-verify", action="store_true",
                   help="skip running the exported model in onnxruntime against the module")
    p.set_defaults(func=_export)
