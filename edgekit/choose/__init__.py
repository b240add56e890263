"""The target picks the student: candidate networks, their INT8 cost on the target before training, the choice."""
