// A frozen example of the v1 formats (made once with client/crypto.ts): if a change to the library
// breaks this, it broke every key and message already stored. Test keys only.
export const KNOWN_ANSWER = {
  recipientPublicKey: "WHfRL/yvdEcz+0eUv2a1g2KXrka1/Q90zR4Xh+fNqCs=",
  recipientPrivateKeyPkcs8: "MC4CAQAwBQYDK2VuBCIEIBhEYwetkRL0qYeVG7KxJBWHW9TwyIE1ftq/gLOB2Zxt",
  conversationKey: "VTRsXvzvf8j9ebp76OXcF9dkqgVosYVIOLoSrGJkPPM=",
  wrappedKey:
    "AfYy0gmwN0iazAtUC7IRac6hJIj6P3Stszc2EXPD/kV+Hx34924iRkuAp9rzW3E2cbS3MmNFWAvjdcs/bgy3VpsQ0AoSnthZthGrIDmUkbLncgjO7vjUgKBLsEGx",
  message: {
    conversationId: 42,
    senderId: 7,
    plaintext: "Parley v1 known answer ✓",
    nonce: "l0uCv4pCA8VHKDzA",
    ciphertext: "1rvRZFl+JsJcM59AKjGL3o65jvjY+ydNdnY=",
    authTag: "S+N+x4C2Wfi3dDJg+zw78A==",
    associatedData: "cGFybGV5L21lc3NhZ2UvdjE7Y29udmVyc2F0aW9uPTQyO3NlbmRlcj03",
  },
} as const;
