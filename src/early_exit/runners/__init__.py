"""Runners: the jobs that write a model (fine-tuning, slenderizing, elastic pre-training)
and what they do after writing it (the model's inference pass). Each takes one
`RunSpec`; the workflow's scripts build it from the rule's params."""
