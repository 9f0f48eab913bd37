"""The stages of the main job, in order. Each module has ``run(ctx) -> Artifact``; a stage
runs the stages it reads first (they are reused when unchanged)."""

STAGES = ("train", "explore", "profile", "evaluate", "fit", "search", "validate", "family",
          "export", "demo", "reduce")
