"""The data stage: task registry, sources, splitting, and the prepared-data contract.

`prepare.prepare_task` writes `data/<task>/{train,dev,test}.jsonl` + `manifest.json`;
`prepared.load_manifest` / `prepared.load_split` read them back for training and
prediction; `registry.resolve_task` checks a task's config entry. Submodules are not
imported here, so checking a config does not pay for scikit-learn or datasets.
"""
