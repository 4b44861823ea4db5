"""Transfer learning (Question 3): a keras.applications base, frozen then fine-tuned.

One job per module: ``bases`` (the bases' definitions, no Keras), ``settings``,
``data`` (image folders, dataset artifacts, the tf.data seam), ``models`` (the
study's head and both phases' trainable layers), ``devices`` (GPU, precision),
``weights`` and ``pretrain`` (where the starting weights come from), ``training``
(the step, :func:`components.transfer.training.run_transfer`, on the shared
resumable loop), ``curves`` (the run's figure) and ``cli`` (``study transfer``).

A run folder holds::

    frozen.keras    the model after phase 1
    model.keras     the model after fine-tuning
    curves.png      training/validation accuracy and loss of both phases, boundary marked
    history.json    per-epoch metrics of each phase
    source/         (weights "source" only) the pretrained base and how it was made
    checkpoint/     the last finished epoch, to resume from
    metrics.json    written last: the mark of a finished run

Importing the package loads nothing: the study CLI imports ``cli`` to build its flags.
"""
