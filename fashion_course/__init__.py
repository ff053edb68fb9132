"""fashion_course: the helpers of a hands-on PyTorch course on Fashion-MNIST.

Use it as ``import fashion_course as fc``. Importing runs nothing: no seeding, no device probing,
no plotting style. Each helper's docstring names the notebook that teaches the idea.

Without a working PyTorch only the set-up check runs (``python -m fashion_course doctor``, or
``fc.run_checks()``); any other name says how to install it instead of failing with a traceback
deep inside an import.
"""

try:
    import torch as _torch  # noqa: F401 - everything but the doctor needs it
except ImportError as _exc:  # not installed, or a broken install (a missing shared library)
    TORCH_IMPORT_ERROR: ImportError | None = _exc
else:
    TORCH_IMPORT_ERROR = None

if TORCH_IMPORT_ERROR is None:
    from . import exercises
    from .data import (
        CLASSES,
        MEAN,
        STD,
        DataCorruptError,
        DataError,
        DataNotFoundError,
        DataSource,
        default_data_dir,
        fashion_mnist,
        find_data,
        labels_map,
        load_tensors,
        read_idx,
    )
    from .distributed import (
        DistributedContext,
        DistributedSetupError,
        ShardedLoader,
        TorchrunRun,
        check_batch_split,
        check_port,
        choose_backend,
        free_port,
        launched_by_torchrun,
        load_snapshot,
        print0,
        run_torchrun,
        save_snapshot,
        setup_distributed,
        teardown_distributed,
        train_distributed,
        worker_pids,
    )
    from .doctor import run_checks, torchvision_ops_check
    from .environment import choose_device, course_threads, seed_everything
    from .export import (
        CheckpointError,
        OnnxModelError,
        export_onnx,
        load_checkpoint,
        load_model,
        onnx_logits,
        onnx_parity,
        onnx_session,
        save_checkpoint,
    )
    from .images import (
        ImageError,
        PreparedImage,
        folder_name,
        labelled_images,
        open_image,
        plot_preparation,
        prepare_image,
        to_grayscale,
    )
    from .loaders import (
        InMemoryLoader,
        alternating_flips,
        batch_augmentation,
        dataloaders,
        in_memory_loaders,
        normalize_transform,
        random_erase,
        random_flip_shift,
        train_val_split,
        validation_indices,
    )
    from .models import (
        MODELS,
        FashionCNN,
        NeuralNetwork,
        build_model,
        count_parameters,
        input_shape,
        patch_whitening,
    )
    from .plotting import (
        plot_class_grid,
        plot_confusion_matrix,
        plot_history,
        plot_misclassified,
        plot_sample_grid,
        show_images,
    )
    from .predict import (
        DEFAULT_THRESHOLD,
        Classifier,
        Prediction,
        classify_images,
        format_predictions,
        load_classifier,
    )
    from .training import (
        RECIPES,
        Evaluation,
        History,
        Recipe,
        augmentation,
        build_recipe_model,
        evaluate,
        fit,
        flip_tta_accuracy,
        make_optimizer,
        predict,
        prepare_model,
        test_loop,
        train_loop,
        train_recipe,
    )
else:
    from .doctor import run_checks, torchvision_ops_check

    def __getattr__(name: str):
        if name.startswith("_"):  # introspection (IPython's _repr_html_, ...): a plain miss
            raise AttributeError(name)
        raise ImportError(
            f"fashion_course.{name} needs PyTorch, which does not import in this Python "
            f"({TORCH_IMPORT_ERROR}). Install the course's requirements with "
            "`pip install -r requirements.txt` (in a notebook, restart the kernel afterwards); "
            "`python -m fashion_course doctor` checks the whole set-up."
        ) from TORCH_IMPORT_ERROR


__version__ = "0.1.0"

__all__ = [
    "CLASSES", "MEAN", "STD", "labels_map",
    "DataError", "DataNotFoundError", "DataCorruptError", "DataSource",
    "find_data", "default_data_dir", "fashion_mnist", "load_tensors", "read_idx",
    "choose_device", "course_threads", "seed_everything",
    "CheckpointError", "OnnxModelError", "save_checkpoint", "load_checkpoint", "load_model",
    "export_onnx", "onnx_session", "onnx_logits", "onnx_parity",
    "InMemoryLoader", "in_memory_loaders", "dataloaders", "normalize_transform",
    "random_flip_shift", "random_erase", "batch_augmentation", "alternating_flips", "train_val_split",
    "validation_indices",
    "NeuralNetwork", "FashionCNN", "MODELS", "build_model", "count_parameters", "input_shape",
    "patch_whitening",
    "show_images", "plot_sample_grid", "plot_class_grid", "plot_history",
    "plot_confusion_matrix", "plot_misclassified",
    "train_loop", "test_loop", "fit", "History", "Evaluation", "evaluate", "predict",
    "flip_tta_accuracy",
    "Recipe", "RECIPES", "build_recipe_model", "prepare_model", "augmentation", "make_optimizer",
    "train_recipe",
    "run_checks", "torchvision_ops_check", "exercises",
    "ImageError", "PreparedImage", "open_image", "to_grayscale", "prepare_image", "plot_preparation",
    "labelled_images", "folder_name",
    "Prediction", "Classifier", "DEFAULT_THRESHOLD", "load_classifier", "classify_images",
    "format_predictions",
    "DistributedSetupError", "DistributedContext", "launched_by_torchrun", "choose_backend",
    "setup_distributed", "teardown_distributed", "print0", "check_batch_split", "ShardedLoader",
    "save_snapshot", "load_snapshot", "train_distributed", "free_port", "check_port", "TorchrunRun",
    "run_torchrun", "worker_pids",
]
