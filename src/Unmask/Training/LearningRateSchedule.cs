namespace Unmask.Training;

public enum DecayKind { Linear, Cosine, Constant }

/// <summary>Linear warm-up to the peak, then decay to zero, as a function of training progress in [0, 1].</summary>
public sealed record LearningRateSchedule(double Peak, double WarmupFraction, DecayKind Decay)
{
    public double At(double progress)
    {
        progress = Math.Clamp(progress, 0, 1);
        if (progress < WarmupFraction) return Peak * progress / WarmupFraction;
        double p = WarmupFraction >= 1 ? 1 : (progress - WarmupFraction) / (1 - WarmupFraction);
        return Decay switch
        {
            DecayKind.Linear => Peak * (1 - p),
            DecayKind.Cosine => Peak * 0.5 * (1 + Math.Cos(Math.PI * p)),
            _ => Peak,
        };
    }
}
