"""Models and what runs them: the Keras architectures, the loss, sequences, training, devices and
the predict stage.
"""
