"""One door per subtask: each module holds a Request (typed; every location an input or output
path, local or gs://), a Result (every file it wrote, named) and ``run(request) -> Result``.

The CLI (``gesturenet_lib.cli``) and the KFP components (``components/``) only translate into
a Request and print or log the Result. gs:// is staged once, around ``run``
(``local_copies.run_staged``), from the paths the request declares.

    dataset_import   another dataset's layout -> TAO's original layout
    dataset_convert  original layout -> hand crops, person-disjoint splits, data.json (Beam)
    train            data.json -> model.tlt (resumable)
    evaluate         model + a set -> metrics.json, confusion_matrix.png, report.html
    inference        model + crops or whole images -> results.txt, results.jsonl
    export           model -> ONNX / .etlt, INT8 calibration, TensorRT, DeepStream, Triton
"""
