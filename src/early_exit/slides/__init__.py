"""The deck: slides generated from the run, Slidev markdown helpers, the build."""
