/**
 * Browser features no page uses, turned off for this origin and any frame: a script that got
 * past the CSP cannot ask for the camera, the microphone or the location in the app's name.
 * Paying online leaves for the provider's hosted page, so the Payment Request API is off too.
 * Set on every answer: the app's own (app.ts) and those written on the socket past Express
 * (lifecycle.ts), which is why it lives apart from both.
 */
export const PERMISSIONS_POLICY = [
  'accelerometer',
  'camera',
  'display-capture',
  'geolocation',
  'gyroscope',
  'magnetometer',
  'microphone',
  'midi',
  'payment',
  'usb',
]
  .map((feature) => `${feature}=()`)
  .join(', ');

/** helmet's `referrerPolicy` in app.ts, for the answers written past it. */
export const REFERRER_POLICY = 'same-origin';
