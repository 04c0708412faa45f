"""The training and evaluation data path (torch): dataset, transforms, collate, sampler,
loader."""
