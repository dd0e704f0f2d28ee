"""Reading runs and summarising them: aggregate metrics with bootstrap CIs, tables, plots.

TensorFlow-free (numpy + matplotlib; TensorBoard logs are read with the tensorboard package), so
reports can be made on any machine that holds the run directories.
"""
