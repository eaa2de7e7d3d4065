"""Building and pushing an image: engines, the build plan, Docker and BuildKit, image names, host limits."""
