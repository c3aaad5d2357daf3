"""What a search works on: checkpoints by name (:mod:`~search.inputs.checkpoints`) and the dataset
catalogue (:mod:`~search.inputs.catalogue`)."""
