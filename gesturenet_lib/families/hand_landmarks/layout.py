"""The layout of the hand_landmarks extractor's output, shared by the graph builders, the
head and the full-frame hand finder."""

# One row of the landmark network's output, as the graph carries it: 21 x (x, y, z) in the
# crop's pixels, hand presence, handedness, 21 world landmarks (metres, turned like the crop).
POINTS_END, PRESENCE, HANDEDNESS = 63, 63, 64
WORLD_START, NET_ROW = 65, 128
EMBEDDING_START, EMBEDDING_SIZE = 128, 128   # MediaPipe's hand embedding, after the row
CANNED_START, CANNED_SIZE = 256, 8           # Google's canned gesture scores on the embedding
RAW_SIZE = CANNED_START + CANNED_SIZE        # the extractor's output
# MediaPipe's landmark z is divided by the input width and by this (its TensorsToLandmarks
# normalize_z), so z has the embedder's scale only after the same division.
MEDIAPIPE_NORMALIZE_Z = 0.4
OBJECT_EPSILON = 1e-5    # added to the hand's extent, as MediaPipe's LandmarksToMatrix does
WRIST, MIDDLE_MCP = 0, 9
FINGERTIPS = (4, 8, 12, 16, 20)
TIP_PAIRS = tuple((a, b) for i, a in enumerate(FINGERTIPS) for b in FINGERTIPS[i + 1:])
FEATURE_SIZE = 63 + len(FINGERTIPS) + len(TIP_PAIRS)
