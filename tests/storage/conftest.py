from s3_server import s3_bucket, s3_env, s3_server  # noqa: F401 - fixtures
