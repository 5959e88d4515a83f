"""The class-level reader for the cncf-kubernetes provider's ``KubernetesExecutor``."""
