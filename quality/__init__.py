"""Quality control: sampled calls scored by criteria, the scores kept and averaged."""
