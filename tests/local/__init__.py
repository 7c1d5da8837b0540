"""`make local`: the synthesized state machine and the real Lambdas (moto's engine) install the rig's nodes
through an SSM stand-in that runs each document's script in the matching container."""
