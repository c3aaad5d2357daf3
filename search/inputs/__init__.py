"""What a search works on: checkpoints by name (:mod:`~search.inputs.checkpoints`), the dataset
catalogue (:mod:`~search.inputs.catalogue`) and the one way a failed download names the root that would have
avoided it (:mod:`~search.inputs.roots`)."""
