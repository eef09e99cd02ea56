"""Analysis: operating points, ELUE, and one module per notebook's figures and tables."""
