import { Prisma } from '@prisma/client';
import { describe, expect, it } from 'vitest';
import { createViewFormatters, formatDecimalText, splitLoginName } from '../../src/http/view-format.js';
import { formatLocalDateTime, zoneOffsetMs } from '../../src/shared/local-date.js';

// A fixed-seed generator, so a failure names a case that can be replayed.
function seededRandom(seed: number) {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

function intlDecimal(text: string, digits: number) {
  return new Intl.NumberFormat('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(
    text as unknown as number,
  );
}

describe('formatDecimalText', () => {
  it.each([
    ['0', 2, '0.00'],
    ['1234.565', 2, '1,234.57'],
    ['1234.564999', 2, '1,234.56'],
    ['9.995', 2, '10.00'],
    ['999999.995', 2, '1,000,000.00'],
    ['0.005', 2, '0.01'],
    ['-0.004', 2, '-0.00'],
    ['-2.5', 0, '-3'],
    ['0012.30', 2, '12.30'],
    ['37.063940', 2, '37.06'],
    ['1500', 0, '1,500'],
    ['415330.98', 4, '415,330.9800'],
  ])('%s to %i decimals is %s, as Intl writes it', (text, digits, expected) => {
    expect(formatDecimalText(text, digits)).toBe(expected);
    expect(intlDecimal(text, digits)).toBe(expected);
  });

  it('agrees with Intl on 20,000 random decimals of every shape', () => {
    const random = seededRandom(42);
    for (let index = 0; index < 20_000; index++) {
      const whole = String(Math.floor(random() * 10 ** Math.floor(random() * 10)));
      const fraction = Array.from({ length: Math.floor(random() * 8) }, () =>
        random() < 0.3 ? '9' : String(Math.floor(random() * 10)),
      ).join('');
      const text = `${random() < 0.2 ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
      const digits = [0, 2, 3, 4][index % 4] ?? 2;
      expect([text, digits, formatDecimalText(text, digits)]).toEqual([text, digits, intlDecimal(text, digits)]);
    }
  });

  it('leaves what is not plain decimal text to the caller', () => {
    expect(formatDecimalText('1e-8', 2)).toBeUndefined();
    expect(formatDecimalText('NaN', 2)).toBeUndefined();
    expect(formatDecimalText('', 2)).toBeUndefined();
  });
});

describe('view formatters', () => {
  const zones = ['UTC', 'Asia/Bangkok', 'Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kathmandu'];

  it('format hours and money as Intl does, also for Decimal exponents and JS numbers', () => {
    const fmt = createViewFormatters({ timeZone: 'UTC', currency: 'THB' });
    expect(fmt.hours(new Prisma.Decimal('37.063940'))).toBe('37.063940');
    expect(fmt.hours(new Prisma.Decimal('1234.5678901'))).toBe('1,234.567890');
    expect(fmt.hours(new Prisma.Decimal('0.00000001'))).toBe('0.000000');
    expect(fmt.money(new Prisma.Decimal('1234.565'))).toBe('1,234.57');
    expect(fmt.money('1500', 'JPY')).toBe('1,500');
    expect(fmt.money(null)).toBe('0.00');
    // A JS number is rounded from its binary value, as before: 1.005 is 1.00499...
    expect(fmt.hours(1.0000005)).toBe(intlDecimal(1.0000005 as unknown as string, 6));
  });

  it.each(zones)('write dates and times in %s as Intl does, across DST changes', (timeZone) => {
    const fmt = createViewFormatters({ timeZone, currency: 'THB' });
    const intlTime = new Intl.DateTimeFormat('en-GB', {
      timeZone,
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    const intlDate = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    const intlDateTime = { format: (value: Date) => `${intlDate.format(value)} ${intlTime.format(value)}` };
    // A time the clocks show twice (an hour, or Lord Howe's half hour, repeated when summer time
    // ends) is followed by its offset from UTC; every other time is written as Intl writes it.
    const intlOffset = new Intl.DateTimeFormat('en-US', { timeZone, timeZoneName: 'longOffset' });
    const offsetOf = (value: Date) => {
      const name = intlOffset.formatToParts(value).find((part) => part.type === 'timeZoneName')?.value ?? '';
      return name === 'GMT' ? 'UTC+00:00' : name.replace('GMT', 'UTC');
    };
    const isShownTwice = (value: Date) =>
      [-60, -30, 30, 60].some(
        (minutes) => intlDateTime.format(new Date(value.getTime() + minutes * 60_000)) === intlDateTime.format(value),
      );
    const expectedDateTime = (value: Date) =>
      `${intlDateTime.format(value)}${isShownTwice(value) ? ` (${offsetOf(value)})` : ''}`;
    const random = seededRandom(7);
    const instants = [
      // Around the 2026 changes in Europe and North America, minute by minute.
      ...Array.from({ length: 240 }, (_, minute) => Date.UTC(2026, 2, 29, 0, minute)),
      ...Array.from({ length: 240 }, (_, minute) => Date.UTC(2026, 10, 1, 4, minute)),
      ...Array.from({ length: 240 }, (_, minute) => Date.UTC(2026, 3, 4, 14, minute)),
      ...Array.from({ length: 3000 }, () => Date.UTC(2000, 0, 1) + Math.floor(random() * 40 * 365 * 86_400_000)),
    ];
    for (const instant of instants) {
      const value = new Date(instant);
      expect([value.toISOString(), fmt.dateTime(value)]).toEqual([value.toISOString(), expectedDateTime(value)]);
      expect([value.toISOString(), fmt.date(value)]).toEqual([value.toISOString(), intlDate.format(value)]);
    }
  });

  it.each([
    // New York goes back from UTC-4 to UTC-5 at 06:00 UTC on 2026-11-01: 01:00-01:59 happens twice.
    ['America/New_York', '2026-11-01T04:30:00Z', '2026-11-01 00:30'],
    ['America/New_York', '2026-11-01T05:30:00Z', '2026-11-01 01:30 (UTC-04:00)'],
    ['America/New_York', '2026-11-01T06:30:00Z', '2026-11-01 01:30 (UTC-05:00)'],
    ['America/New_York', '2026-11-01T07:30:00Z', '2026-11-01 02:30'],
    // Berlin goes back from UTC+2 to UTC+1 at 01:00 UTC on 2026-10-25: 02:00-02:59 happens twice.
    ['Europe/Berlin', '2026-10-25T00:30:00Z', '2026-10-25 02:30 (UTC+02:00)'],
    ['Europe/Berlin', '2026-10-25T01:30:00Z', '2026-10-25 02:30 (UTC+01:00)'],
    // Lord Howe goes back half an hour (UTC+11 to UTC+10:30) at 15:00 UTC on 2026-04-04.
    ['Australia/Lord_Howe', '2026-04-04T14:45:00Z', '2026-04-05 01:45 (UTC+11:00)'],
    ['Australia/Lord_Howe', '2026-04-04T15:15:00Z', '2026-04-05 01:45 (UTC+10:30)'],
    // The hour skipped in spring has one reading.
    ['America/New_York', '2026-03-08T07:30:00Z', '2026-03-08 03:30'],
  ])('in %s, write %s as %s: a time the clocks show twice says which', (timeZone, instant, expected) => {
    const fmt = createViewFormatters({ timeZone, currency: 'THB' });
    expect(fmt.dateTime(new Date(instant))).toBe(expected);
    expect(formatLocalDateTime(new Date(instant), timeZone)).toBe(expected);
  });

  it('write a date and time year first, as the dates beside them are', () => {
    const fmt = createViewFormatters({ timeZone: 'Asia/Bangkok', currency: 'THB' });
    expect(fmt.dateTime(new Date('2026-12-01T19:54:00Z'))).toBe('2026-12-02 02:54');
  });

  it('write a payment method as the mark-paid form names it', () => {
    const fmt = createViewFormatters({ timeZone: 'UTC', currency: 'THB' });
    expect(['bank_transfer', 'internal_transfer', 'cash', null].map(fmt.paymentMethod)).toEqual([
      'bank transfer',
      'internal transfer',
      'cash',
      '',
    ]);
  });

  it('write nothing for a missing date', () => {
    const fmt = createViewFormatters({ timeZone: 'UTC', currency: 'THB' });
    expect(fmt.dateTime(null)).toBe('');
    expect(fmt.date(undefined)).toBe('');
  });
});

describe('zoneOffsetMs', () => {
  it('gives the offset of the instant itself on a day the zone changes it', () => {
    // Berlin moves from +1 h to +2 h at 01:00 UTC on 2026-03-29.
    expect(zoneOffsetMs(Date.UTC(2026, 2, 29, 0, 59, 59), 'Europe/Berlin')).toBe(3_600_000);
    expect(zoneOffsetMs(Date.UTC(2026, 2, 29, 1, 0, 0), 'Europe/Berlin')).toBe(7_200_000);
    expect(zoneOffsetMs(Date.UTC(2026, 2, 29, 12), 'Europe/Berlin')).toBe(7_200_000);
    expect(zoneOffsetMs(Date.UTC(2026, 5, 1), 'Asia/Kathmandu')).toBe(5.75 * 3_600_000);
  });
});

describe('splitLoginName', () => {
  it.each([
    ['alice', ['alice']],
    ['srinivasaraghavan_venkatanarayanan', ['srinivasaraghavan_', 'venkatanarayanan']],
    ['jane.doe-ext@lab', ['jane.', 'doe-', 'ext@', 'lab']],
  ])('breaks %s only after its separators, each word kept whole', (name, pieces) => {
    expect(splitLoginName(name)).toEqual(pieces.map((text) => ({ text, isKeptWhole: true })));
  });

  it('lets a word of more than 20 characters break where it must', () => {
    expect(splitLoginName(`${'x'.repeat(20)}_y`)).toEqual([
      { text: `${'x'.repeat(20)}_`, isKeptWhole: false },
      { text: 'y', isKeptWhole: true },
    ]);
    expect(splitLoginName(`y_${'x'.repeat(20)}`)).toEqual([
      { text: 'y_', isKeptWhole: true },
      { text: 'x'.repeat(20), isKeptWhole: true },
    ]);
  });
});

describe('the HTML formatters', () => {
  const fmt = createViewFormatters({ timeZone: 'UTC', currency: 'THB' });

  it.each([
    ['research_computing_partners_tier', 'research_<wbr>computing_<wbr>partners_<wbr>tier'],
    ['gov', 'gov'],
    ['a-b.c@d', 'a-<wbr>b.<wbr>c@<wbr>d'],
    ['<b>&"x\'_y', '&lt;b&gt;&amp;&#34;x&#39;_<wbr>y'],
  ])('breakableNameHtml(%j) is %j, escaped as <%%= escapes', (name, html) => {
    expect(fmt.breakableNameHtml(name)).toBe(html);
  });

  it.each([
    ['alice', '<span><span class="nowrap">alice</span></span>'],
    [
      'research_computing-partners.team',
      '<span><span class="nowrap">research_</span><wbr><span class="nowrap">computing-</span><wbr>' +
        '<span class="nowrap">partners.</span><wbr><span class="nowrap">team</span></span>',
    ],
    [
      '<b>&"x\'_y',
      '<span><span class="nowrap">&lt;b&gt;&amp;&#34;x&#39;_</span><wbr><span class="nowrap">y</span></span>',
    ],
    [`${'x'.repeat(40)}_y`, `<span><span>${'x'.repeat(40)}_</span><wbr><span class="nowrap">y</span></span>`],
  ])('loginNameHtml(%j) is %j: the login-name partial it replaces, escaped as <%%= escapes', (name, html) => {
    expect(fmt.loginNameHtml(name)).toBe(html);
  });

  it('wraps a date and time between the day and the time only, and escapes what a route formatted', () => {
    expect(fmt.wrappableDateTimeHtml(new Date('2026-12-04T10:28:00Z'))).toBe(
      '<span><span class="nowrap">2026-12-04</span> <span class="nowrap">10:28</span></span>',
    );
    expect(fmt.wrappableDateTimeHtml('<today>')).toBe('&lt;today&gt;');
    expect(fmt.wrappableDateTimeHtml(null)).toBe('');
  });
});
