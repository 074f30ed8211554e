"""The EGA object model: studies, samples, experiments, runs, analyses, datasets, DACs, policies."""
