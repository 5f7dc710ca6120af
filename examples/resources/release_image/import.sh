# Import by the pinned reference; the tag is optional and recorded when given.
terraform import release_image.web_v2 'registry.example.com/shop/web:2.0.0@sha256:4f1d6a0b9c6e1c0c7f9f4e0a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e'
terraform import release_image.web_v1 'registry.example.com/shop/web@sha256:4f1d6a0b9c6e1c0c7f9f4e0a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e'
