"""Evaluation layer: benchmarks (frozen dataset splits + task + metric suite), scoring predictions from any tool
or running a hub model, hash-pinned result records, and leaderboards."""

from hub.bench.benchmarks import adhoc_benchmark, benchmark_dataset, benchmarks, get_benchmark
from hub.bench.compare import compare_benchmark, compare_board, comparison
from hub.bench.evaluate import evaluate_model, score_predictions
from hub.bench.leaderboard import leaderboard, verified_leaderboard
from hub.bench.truth import verify_truth

__all__ = [
    "adhoc_benchmark",
    "benchmark_dataset",
    "benchmarks",
    "compare_benchmark",
    "compare_board",
    "comparison",
    "evaluate_model",
    "get_benchmark",
    "leaderboard",
    "score_predictions",
    "verified_leaderboard",
    "verify_truth",
]
