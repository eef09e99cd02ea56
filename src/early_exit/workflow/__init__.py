"""The workflow's support code: config checks, atomic writes, job logs,
downloads, cluster pre-flight checks."""
